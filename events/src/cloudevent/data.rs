//! An event's `data`, parsed into a `serde_json::Value` at once or on first use.
//!
//! Most readers want the tree, and get it by dereferencing ([`Data`] is a `Value` to them).
//! A whole-log fold reads every record once, and parsing `data` into a tree (a map node, a
//! string for every key and every text value) was the largest part of its CPU per record
//! (BENCHMARKS.md, issue 20). So [`CloudEvent::parse_lazy`](super::CloudEvent::parse_lazy) can
//! keep the JSON text of `data` for the event types its caller names, checked to be JSON a
//! `Value` parse accepts but not built into one; a reader that knows the type's fields reads
//! them straight from the text ([`Data::view`]), and anything else builds the tree on first
//! use, once.

use std::sync::OnceLock;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// An event's `data`: a `Value`, or JSON text whose `Value` is built when first needed. Both
/// compare, print and serialize as the `Value`.
#[derive(Clone)]
pub struct Data {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    Value(Value),
    /// Text that [`checked_text`] accepted: a `Value` parse of it cannot fail.
    Text {
        text: Box<RawValue>,
        value: OnceLock<Value>,
    },
}

impl Data {
    /// The `Value`, built from the text on first use.
    pub fn value(&self) -> &Value {
        match &self.repr {
            Repr::Value(v) => v,
            Repr::Text { text, value } => value.get_or_init(|| {
                let parsed = serde_json::from_str(text.get());
                // `checked_text` parsed the same text with the same parser; no error is left.
                debug_assert!(parsed.is_ok(), "checked data text parses: {parsed:?}");
                parsed.unwrap_or(Value::Null)
            }),
        }
    }

    /// The `Value`, owned.
    pub fn into_value(self) -> Value {
        match self.repr {
            Repr::Value(v) => v,
            Repr::Text { text, value } => match value.into_inner() {
                Some(v) => v,
                None => Data { repr: Repr::Text { text, value: OnceLock::new() } }.value().clone(),
            },
        }
    }

    /// `data` that is a JSON object, read as the struct `T`: from its text where it is kept as
    /// text (no tree is built), from the tree otherwise; `None` where it is no object or not a
    /// `T`. (Only objects: a derived `Deserialize` of a struct also takes an array, its fields
    /// in order, which the tree's accessors would not.) What `T` reads must mean what reading
    /// the tree would: callers fall back to the tree on `None`, so `T` may be stricter than the
    /// tree's accessors (a key held twice, which the tree resolves to the last, is an error for
    /// a derived `Deserialize`) but never looser.
    pub fn view_object<'a, T: serde::Deserialize<'a>>(&'a self) -> Option<T> {
        match &self.repr {
            Repr::Value(v) => v.is_object().then(|| T::deserialize(v).ok()).flatten(),
            Repr::Text { text, value } => match value.get() {
                Some(v) => v.is_object().then(|| T::deserialize(v).ok()).flatten(),
                // A raw value's text has no leading whitespace.
                None => text.get().starts_with('{').then(|| serde_json::from_str(text.get()).ok()).flatten(),
            },
        }
    }

    /// Whether `data` is held as text, its tree not built yet (for tests of the fold's paths).
    pub fn is_unparsed(&self) -> bool {
        matches!(&self.repr, Repr::Text { value, .. } if value.get().is_none())
    }

    /// Keeps `text` (a member of a payload that is being parsed at depth 1: the payload's
    /// object around it) when a `Value` parse of the payload would accept it; `None` when it
    /// would not, or when this check cannot tell (then the caller parses the payload eagerly,
    /// and gets that parse's answer and error).
    pub(super) fn checked_text(text: &RawValue) -> Option<Data> {
        checked_text(text.get())?;
        Some(Data { repr: Repr::Text { text: text.to_owned(), value: OnceLock::new() } })
    }
}

impl From<Value> for Data {
    fn from(v: Value) -> Data {
        Data { repr: Repr::Value(v) }
    }
}

impl Default for Data {
    fn default() -> Data {
        Data::from(Value::Null)
    }
}

impl std::ops::Deref for Data {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.value()
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Data) -> bool {
        self.value() == other.value()
    }
}

impl PartialEq<Value> for Data {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.value(), f)
    }
}

impl serde::Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Data, D::Error> {
        Value::deserialize(d).map(Data::from)
    }
}

/// Containers (arrays and objects) a payload may nest, counting its own object: serde_json
/// refuses the 128th (its recursion limit), so `data`, inside the payload's object, may nest
/// 126. The check refuses more than that, so it never accepts what the payload's parse
/// refuses; [`Data::checked_text`]'s caller parses the payload again for the error.
pub(super) const DATA_DEPTH_MAX: u32 = 126;

/// The containers `value` nests (0 for a scalar). serde_json built it, so at most its limit.
pub(super) fn depth(value: &Value) -> u32 {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Parses `text` with the parser and the rules of a `Value` parse (numbers converted, so one
/// beyond f64 is refused; strings unescaped, so a lone surrogate is refused; containers
/// nested no deeper than inside a payload), building nothing.
fn checked_text(text: &str) -> Option<()> {
    let mut de = serde_json::Deserializer::from_str(text);
    Check { depth: 0 }.deserialize(&mut de).ok()?;
    de.end().ok()
}

/// A walk of one JSON value at `depth` containers below `data`'s level.
#[derive(Clone, Copy)]
struct Check {
    depth: u32,
}

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
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
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.inner::<A::Error>()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.inner::<A::Error>()?;
        // Keys are strings: read (unescaped, checked) and dropped.
        while map.next_key::<IgnoredKey>()?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

impl Check {
    /// The walk one container deeper, refused beyond [`DATA_DEPTH_MAX`].
    fn inner<E: serde::de::Error>(self) -> Result<Check, E> {
        let depth = self.depth + 1;
        if depth > DATA_DEPTH_MAX {
            return Err(E::custom("nested deeper than a payload may be"));
        }
        Ok(Check { depth })
    }
}

/// The key serde_json's `Value` parse reads as "the value is JSON text; parse it" (its
/// `raw_value` feature's marker): a `Value` parse of an object that holds it is not a plain
/// walk, so the check leaves such data to the eager parse.
const RAW_VALUE_KEY: &str = "$serde_json::private::RawValue";

/// An object key, parsed as a string (escapes checked, as `IgnoredAny` would not) and
/// dropped; [`RAW_VALUE_KEY`] refused.
struct IgnoredKey;

impl<'de> serde::Deserialize<'de> for IgnoredKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IgnoredKey, D::Error> {
        struct Visit;
        impl Visitor<'_> for Visit {
            type Value = IgnoredKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<IgnoredKey, E> {
                if key == RAW_VALUE_KEY {
                    return Err(E::custom("serde_json's raw-value key"));
                }
                Ok(IgnoredKey)
            }
        }
        d.deserialize_str(Visit)
    }
}
