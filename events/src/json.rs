//! Strict JSON: an object holds each key once, at every nesting level. serde_json keeps the
//! last of duplicate keys silently, so signed bytes with `"value":1,…,"value":2` would mean
//! one thing to the ledger and maybe another to a reader that keeps the first; the ledger
//! refuses them instead.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Deserialize as _;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Checks that no object in `json` holds a key twice (keys compared after unescaping, so
/// `"a"` and `"\u0061"` are the same key). The error names the duplicate as a JSON pointer
/// (`/data/value`). `json` should already be known to parse; a syntax error is reported too.
pub fn check_unique_keys(json: &[u8]) -> Result<(), serde_json::Error> {
    // Most inputs hold no duplicate: the first walk builds no paths. Only an input it refuses
    // is walked again, naming what it finds; both walks read the same bytes with the same
    // deserializer, so the second finds the same first problem (the error is the one this
    // function always gave).
    if distinct_keys(json).is_ok() {
        return Ok(());
    }
    walk(json, Some(""))
}

/// Whether `json` parses with no key twice in any object; the error says neither where nor
/// what.
fn distinct_keys(json: &[u8]) -> Result<(), serde_json::Error> {
    walk(json, None)
}

fn walk(json: &[u8], path: Option<&str>) -> Result<(), serde_json::Error> {
    // As text where it is (see `from_text`); the bytes again for the error.
    if let Ok(text) = std::str::from_utf8(json) {
        let mut de = serde_json::Deserializer::from_str(text);
        if (Unique { path }).deserialize(&mut de).and_then(|()| de.end()).is_ok() {
            return Ok(());
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    Unique { path }.deserialize(&mut de)?;
    de.end()
}

/// `T` parsed from `json` as text, when it is valid UTF-8 throughout (checked once, here);
/// `None` where it is not, or where the parse fails: the caller parses the bytes again
/// (`serde_json::from_slice`) for the answer and the error. The byte parser checks the UTF-8 of
/// every string again, one call a string, which was 6% of a stored record's parse
/// (BENCHMARKS.md, issue 20); the text parser is the byte parser without that check, so it
/// accepts what the byte parser accepts and builds the same values.
pub(crate) fn from_text<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    serde_json::from_str(std::str::from_utf8(json).ok()?).ok()
}

/// Walks one value; `path` is its JSON pointer, when the walk names what it finds.
struct Unique<'a> {
    path: Option<&'a str>,
}

/// Objects with at most this many keys are checked against a list, larger ones with a set:
/// a list's scan is cheaper than hashing for the few keys envelopes and events hold.
const KEYS_LISTED_MAX: usize = 16;

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
            let path = self.path.map(|p| format!("{p}/{index}"));
            if seq.next_element_seed(Unique { path: path.as_deref() })?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut listed: Vec<Cow<'de, str>> = Vec::new();
        let mut hashed: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            // JSON pointer escaping (RFC 6901): `~` as `~0`, `/` as `~1`.
            let path = self.path.map(|p| format!("{p}/{}", key.replace('~', "~0").replace('/', "~1")));
            let fresh = if hashed.is_empty() && listed.len() < KEYS_LISTED_MAX {
                let fresh = !listed.contains(&key);
                listed.push(key);
                fresh
            } else {
                // `hashed.len() + listed.len()` stays the number of keys read: the list moves
                // into the set once, when it is full.
                hashed.extend(listed.drain(..));
                hashed.insert(key)
            };
            if !fresh {
                return Err(A::Error::custom(match path {
                    Some(path) => format!("duplicate key {path}"),
                    None => "duplicate key".to_owned(),
                }));
            }
            map.next_value_seed(Unique { path: path.as_deref() })?;
        }
        Ok(())
    }
}

/// An object's key, borrowed from the input where it needs no unescaping.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
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
    use super::{check_unique_keys, distinct_keys, walk};
    use proptest::prelude::*;

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

    /// The walk that names the duplicate, alone: what `check_unique_keys` answers for
    /// every input.
    fn named(json: &[u8]) -> Result<(), String> {
        walk(json, Some("")).map_err(|e| e.to_string())
    }

    /// JSON texts with keys that collide (also through `\u` escapes), objects past the
    /// listed size, nesting, and now and then a syntax error or trailing bytes.
    fn json_text() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("a".to_owned()),
            Just("\\u0061".to_owned()),
            Just("b".to_owned()),
            Just("k/~".to_owned()),
            (0..40u32).prop_map(|n| format!("key{n}")),
        ];
        let leaf = prop_oneof![Just("1".to_owned()), Just("\"s\"".to_owned()), Just("null".to_owned())];
        let value = leaf.prop_recursive(4, 64, 24, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((key.clone(), inner.clone()), 0..24).prop_map(|members| {
                    let members: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", members.join(","))
                }),
                // Past the listed size: distinct keys, and now and then one of them again.
                (17..40usize, prop::option::of(0..40usize), inner).prop_map(|(n, again, v)| {
                    let mut members: Vec<String> = (0..n).map(|i| format!("\"key{i}\":{v}")).collect();
                    if let Some(i) = again {
                        members.push(format!("\"key{i}\":{v}"));
                    }
                    format!("{{{}}}", members.join(","))
                }),
            ]
        });
        (value, prop_oneof![4 => Just(""), 1 => Just(" {}"), 1 => Just("}")])
            .prop_map(|(v, tail)| format!("{v}{tail}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The first walk refuses exactly what the naming walk refuses, and the answer is
        /// the naming walk's, error text included.
        #[test]
        fn the_quick_walk_agrees_with_the_naming_walk(json in json_text()) {
            let expected = named(json.as_bytes());
            prop_assert_eq!(distinct_keys(json.as_bytes()).is_ok(), expected.is_ok(), "{}", json);
            prop_assert_eq!(check_unique_keys(json.as_bytes()).map_err(|e| e.to_string()), expected);
        }
    }

    /// The generator reaches both answers and objects past the listed size, so the property
    /// above is not vacuous.
    #[test]
    fn the_generator_reaches_every_case() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let (mut ok, mut duplicate, mut large) = (0, 0, 0);
        for _ in 0..2048 {
            let json = json_text().new_tree(&mut runner).expect("a value").current();
            match named(json.as_bytes()) {
                Ok(()) => ok += 1,
                Err(e) if e.contains("duplicate key") => duplicate += 1,
                Err(_) => {}
            }
            if json.matches("key").count() > super::KEYS_LISTED_MAX && named(json.as_bytes()).is_ok() {
                large += 1;
            }
        }
        assert!(ok > 50 && duplicate > 50 && large > 5, "ok {ok}, duplicate {duplicate}, large {large}");
    }
}
