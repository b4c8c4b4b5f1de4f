//! `CloudEvent::parse_submitted` parses a payload once, and decides every payload as the two
//! passes it replaced decide it: `CloudEvent::parse`, then the duplicate-key pass, then
//! `check_submitted` — the same event, or the same error.

use proptest::prelude::*;
use serde_json::json;

use super::{CloudEvent, CloudEventError};
use crate::json::check_unique_keys;

/// The rules for new events as two passes over the payload: what `parse_submitted` did before
/// it parsed once, and what it still does where the one pass finds anything wrong.
fn two_passes(payload: &[u8]) -> Result<CloudEvent, CloudEventError> {
    let event = CloudEvent::parse(payload)?;
    check_unique_keys(payload).map_err(|e| CloudEventError::DuplicateKey(e.to_string()))?;
    event.check_submitted()?;
    Ok(event)
}

/// serde_json's private member name that `Value`'s parse reads as a raw value.
const RAW_VALUE: &str = "$serde_json::private::RawValue";

/// A JSON text, written out member by member so that it can hold what a `Value` cannot: a key
/// twice, a key spelled with escapes.
#[derive(Debug, Clone)]
enum J {
    /// A literal written as it is: numbers (some out of range), booleans, null.
    Lit(&'static str),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(Key, J)>),
}

#[derive(Debug, Clone)]
struct Key {
    name: String,
    /// Every character written as `\uXXXX`.
    escaped: bool,
}

impl J {
    fn write(&self, out: &mut String) {
        match self {
            J::Lit(text) => out.push_str(text),
            J::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            J::Obj(members) => write_object(members, out),
        }
    }

    fn has_raw_value_key(&self) -> bool {
        match self {
            J::Lit(_) | J::Str(_) => false,
            J::Arr(items) => items.iter().any(J::has_raw_value_key),
            J::Obj(members) => members.iter().any(|(k, v)| k.name == RAW_VALUE || v.has_raw_value_key()),
        }
    }
}

fn write_object(members: &[(Key, J)], out: &mut String) {
    out.push('{');
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        key.write(out);
        out.push(':');
        value.write(out);
    }
    out.push('}');
}

impl Key {
    fn write(&self, out: &mut String) {
        if !self.escaped {
            out.push_str(&serde_json::to_string(&self.name).unwrap());
            return;
        }
        out.push('"');
        for unit in self.name.encode_utf16() {
            out.push_str(&format!("\\u{unit:04x}"));
        }
        out.push('"');
    }
}

fn key(names: impl Strategy<Value = String>) -> impl Strategy<Value = Key> {
    (names, prop::bool::weighted(0.15)).prop_map(|(name, escaped)| Key { name, escaped })
}

/// Member names inside values: few enough that some repeat by chance, with `/` and `~` (escaped
/// in the duplicate-key pass's JSON pointer), non-ASCII, empty, and the raw-value token.
fn inner_name() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => "[a-z]{1,2}",
        3 => Just("a".to_owned()),
        3 => Just("k/~".to_owned()),
        3 => Just("é".to_owned()),
        3 => Just(String::new()),
        1 => Just(RAW_VALUE.to_owned()),
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "\\PC{0,6}",
        1 => Just("[1]".to_owned()),
        1 => Just(r#"{"a":1,"a":2}"#.to_owned()),
        1 => Just("x\u{0}\"\\".to_owned()),
    ]
}

fn literal() -> impl Strategy<Value = &'static str> {
    let rare = |texts: Vec<&'static str>| prop::sample::select(texts);
    prop_oneof![
        40 => prop::sample::select(vec![
            "null",
            "true",
            "false",
            "0",
            "-0",
            "7",
            "-12",
            "1.5",
            "-0.0",
            "2.5e-3",
            "1e308",
            "18446744073709551615",
            "-9223372036854775808",
            "18446744073709551616",
            "-9223372036854775809",
        ]),
        // Out of range for f64: a JSON error.
        1 => rare(vec!["1e400", "-1e400"]),
    ]
}

/// An object's members, and now and then one of its keys again (the same spelling or the
/// other), at the end or in the middle.
fn object(value: impl Strategy<Value = J> + Clone) -> impl Strategy<Value = J> {
    let members = prop::collection::vec((key(inner_name()), value.clone()), 0..5);
    let again = prop::option::weighted(
        0.12,
        (any::<prop::sample::Index>(), any::<bool>(), value, any::<prop::sample::Index>()),
    );
    (members, again).prop_map(|(mut members, again)| {
        if let Some((which, escaped, value, at)) = again
            && !members.is_empty()
        {
            let name = members[which.index(members.len())].0.name.clone();
            let at = at.index(members.len() + 1);
            members.insert(at, (Key { name, escaped }, value));
        }
        J::Obj(members)
    })
}

fn value() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![literal().prop_map(J::Lit), string().prop_map(J::Str)];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![prop::collection::vec(inner.clone(), 0..5).prop_map(J::Arr), object(inner)]
    })
}

fn s(text: &str) -> J {
    J::Str(text.to_owned())
}

/// A valid value of an attribute mostly, and now and then one that is not.
fn attribute(valid: impl Strategy<Value = J> + 'static) -> impl Strategy<Value = J> {
    prop_oneof![
        60 => valid,
        1 => Just(J::Lit("null")),
        1 => Just(s("")),
        1 => Just(J::Lit("7")),
        1 => Just(s("x\u{1}")),
        1 => value(),
    ]
}

/// The members of a payload object: the attributes (the optional ones sometimes left out),
/// `data`, extension attributes, and now and then a member again (an attribute, `data` or an
/// extension, the same spelling or the other, the same value or another), in any order.
fn members() -> impl Strategy<Value = Vec<(Key, J)>> {
    let name = |n: &'static str| prop_oneof![4 => Just(Key { name: n.to_owned(), escaped: false }), 1 => Just(Key { name: n.to_owned(), escaped: true })];
    let required = (
        (name("specversion"), attribute(prop_oneof![20 => Just(s("1.0")), 1 => Just(s("0.3"))])),
        (name("id"), attribute("[a-z0-9-]{1,12}".prop_map(J::Str))),
        (name("source"), attribute(Just(s("assay:key/runner-gpu0")))),
        (
            name("type"),
            attribute(prop::sample::select(vec!["gpu.xid", "run.queued", "x.later.v2"]).prop_map(s)),
        ),
        (
            name("time"),
            attribute(
                prop_oneof![
                    20 => prop::sample::select(vec!["2025-03-04T05:06:07.5+02:00", "1970-01-01T00:00:00Z"]),
                    1 => prop::sample::select(vec!["2300-01-01T00:00:00Z", "yesterday"]),
                ]
                .prop_map(s),
            ),
        ),
    );
    let optional = (
        prop::option::of((name("subject"), attribute(Just(s("gpu/0000:01:00.0"))))),
        prop::option::of((
            name("datacontenttype"),
            attribute(prop_oneof![20 => Just(s("application/json")), 1 => Just(s("text/plain"))]),
        )),
        prop::option::of((
            name("dataschema"),
            attribute(
                prop_oneof![
                    Just("https://assay.dev/schemas/events/gpu.xid.json"),
                    Just("https://assay.dev/schemas/events/run.queued.json"),
                ]
                .prop_map(s),
            ),
        )),
        prop::option::weighted(0.9, (name("data"), value())),
    );
    let extensions = prop::collection::vec(
        (
            key(prop::sample::select(vec!["ext", "traceparent", "a", "datax", "é"]).prop_map(str::to_owned)),
            value(),
        ),
        0..3,
    );
    let again =
        prop::option::weighted(0.2, (any::<prop::sample::Index>(), any::<bool>(), prop::option::of(value())));
    (required, optional, extensions, again)
        .prop_map(|((a, b, c, d, e), (f, g, h, i), extensions, again)| {
            let mut members: Vec<(Key, J)> = vec![a, b, c, d, e];
            members.extend([f, g, h, i].into_iter().flatten());
            members.extend(extensions);
            if let Some((which, escaped, other)) = again {
                let (key, value) = members[which.index(members.len())].clone();
                members.push((Key { name: key.name, escaped }, other.unwrap_or(value)));
            }
            members
        })
        .prop_shuffle()
}

/// What is done to the text of the object now and then: cut short, followed by more, or
/// replaced by a value that is not an object.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Cut(prop::sample::Index),
    Trailing(&'static str),
    NotAnObject(J),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        60 => Just(Damage::None),
        1 => any::<prop::sample::Index>().prop_map(Damage::Cut),
        1 => prop::sample::select(vec![" ", " x", " {}", "\n"]).prop_map(Damage::Trailing),
        1 => value().prop_map(Damage::NotAnObject),
    ]
}

fn payload(members: &[(Key, J)], damage: &Damage) -> String {
    let mut text = String::new();
    match damage {
        Damage::NotAnObject(value) => value.write(&mut text),
        _ => write_object(members, &mut text),
    }
    match damage {
        Damage::Cut(at) => {
            let mut at = at.index(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.truncate(at);
        }
        Damage::Trailing(more) => text.push_str(more),
        Damage::None | Damage::NotAnObject(_) => {}
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// The one pass and the two passes give the same event or the same error, and a payload
    /// the rules accept is parsed once (but for one holding serde_json's raw-value token as a
    /// member name, which `Value`'s own parse reads differently and so decides).
    #[test]
    fn one_pass_decides_as_the_two_passes(members in members(), damage in damage()) {
        let text = payload(&members, &damage);
        let one = CloudEvent::parse_submitted(text.as_bytes());
        let two = two_passes(text.as_bytes());
        prop_assert_eq!(&one, &two, "{}", text);
        let token = members.iter().any(|(k, v)| k.name == RAW_VALUE || v.has_raw_value_key())
            || matches!(&damage, Damage::NotAnObject(v) if v.has_raw_value_key());
        if two.is_ok() && !token {
            prop_assert!(CloudEvent::parse_strict(text.as_bytes()).is_some(), "{}", text);
        }
    }
}

/// The generated payloads reach every outcome: accepted, and refused for each reason (a
/// generator that made only broken payloads would prove nothing above).
#[test]
fn the_payloads_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner =
        TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let (mut ok, mut json, mut missing, mut invalid, mut duplicate) = (0, 0, 0, 0, 0);
    for _ in 0..2000 {
        let (members, damage) = (members(), damage()).new_tree(&mut runner).unwrap().current();
        match two_passes(payload(&members, &damage).as_bytes()) {
            Ok(_) => ok += 1,
            Err(CloudEventError::Json(_)) => json += 1,
            Err(CloudEventError::Missing(_)) => missing += 1,
            Err(CloudEventError::Invalid { .. }) => invalid += 1,
            Err(CloudEventError::DuplicateKey(_)) => duplicate += 1,
        }
    }
    for (outcome, n) in
        [("ok", ok), ("json", json), ("missing", missing), ("invalid", invalid), ("duplicate", duplicate)]
    {
        assert!(
            n >= 80,
            "{outcome}: {n} of 2000 (ok {ok}, json {json}, missing {missing}, invalid {invalid}, duplicate {duplicate})"
        );
    }
}

/// Cases the generator may reach only rarely, each decided as the two passes decide it.
#[test]
fn one_pass_decides_as_the_two_passes_in_the_corners() {
    let attrs = r#""specversion":"1.0","source":"s","time":"2025-03-04T05:06:07Z","type":"gpu.xid""#;
    let cases = [
        // A repeated extension attribute, spelled twice alike or once escaped.
        (format!(r#"{{{attrs},"id":"x","ext":1,"ext":2}}"#), Some("/ext")),
        (format!(r#"{{{attrs},"id":"x","ext":1,"\u0065xt":1}}"#), Some("/ext")),
        (format!(r#"{{{attrs},"id":"x","\u0069d":"y"}}"#), Some("/id")),
        (format!(r#"{{{attrs},"id":"x","data":null,"data":null}}"#), Some("/data")),
        (
            format!(r#"{{{attrs},"id":"x","data":[{{}},{{"a":[{{"b":1,"\u0062":2}}]}}]}}"#),
            Some("/data/1/a/0/b"),
        ),
        (format!(r#"{{{attrs},"id":"x","ext":{{"k/~":1,"k/~":1}}}}"#), Some("/ext/k~1~0")),
        // The attribute rules come first: the last `id` is empty.
        (format!(r#"{{{attrs},"id":"x","id":""}}"#), None),
        // A JSON error after a duplicate is the parser's error.
        (format!(r#"{{{attrs},"id":"x","ext":1,"ext":2"#), None),
        // serde_json's raw-value token as a member name: `Value`'s parse reads the string as
        // JSON, and so do both.
        (format!(r#"{{{attrs},"id":"x","data":{{"{RAW_VALUE}":"[1,2]"}}}}"#), None),
        (format!(r#"{{{attrs},"id":"x","data":{{"{RAW_VALUE}":"{{\"a\":1,\"a\":2}}"}}}}"#), None),
        (format!(r#"{{{attrs},"id":"x","data":{{"{RAW_VALUE}":[1]}}}}"#), None),
        (format!(r#"{{{attrs},"id":"x","{RAW_VALUE}":"[1]"}}"#), None),
        // No duplicates: the same keys in sibling objects and at other depths.
        (
            format!(
                r#"{{{attrs},"id":"x","a":{{"a":{{"a":1}}}},"data":{{"id":"x","data":[{{"a":1}},{{"a":1}}]}}}}"#
            ),
            None,
        ),
    ];
    // Nesting up to serde_json's depth limit and past it (a JSON error).
    let deep = |depth: usize| {
        let data = format!("{}1{}", r#"{"a":["#.repeat(depth), "]}".repeat(depth));
        (format!(r#"{{{attrs},"id":"x","data":{data}}}"#), None)
    };
    let cases: Vec<(String, Option<&str>)> =
        cases.into_iter().chain([deep(10), deep(63), deep(64), deep(200)]).collect();
    for (text, duplicate) in &cases {
        let one = CloudEvent::parse_submitted(text.as_bytes());
        assert_eq!(one, two_passes(text.as_bytes()), "{text}");
        if let Some(path) = duplicate {
            let err = one.unwrap_err();
            assert!(matches!(&err, CloudEventError::DuplicateKey(_)), "{text}: {err}");
            assert!(err.to_string().contains(&format!("duplicate key {path}")), "{text}: {err}");
        }
    }
    assert!(CloudEvent::parse_strict(deep(63).0.as_bytes()).is_some(), "at the depth limit, parsed once");
    assert!(matches!(CloudEvent::parse_submitted(deep(64).0.as_bytes()), Err(CloudEventError::Json(_))));
    let raw = format!(r#"{{{attrs},"id":"x","data":{{"{RAW_VALUE}":"[1,2]"}}}}"#);
    assert_eq!(CloudEvent::parse_submitted(raw.as_bytes()).unwrap().data, json!([1, 2]));
    let plain = format!(r#"{{{attrs},"id":"x","ext":[1,{{"b":2}}],"data":{{"a":[1.5,-0,1e308,"\u0061"]}}}}"#);
    assert!(CloudEvent::parse_strict(plain.as_bytes()).is_some(), "parsed once");
}

/// `CloudEvent::parse` as it was, on the bytes alone (the byte parser checks each string's
/// UTF-8 itself): what the parse of the payload as text must agree with.
fn parse_as_bytes(payload: &[u8]) -> Result<CloudEvent, CloudEventError> {
    let fields = match serde_json::from_slice::<super::Attributes>(payload) {
        Ok(fields) => fields,
        Err(e) => {
            let value: serde_json::Value =
                serde_json::from_slice(payload).map_err(|e| CloudEventError::Json(e.to_string()))?;
            return Err(CloudEventError::Json(match value {
                serde_json::Value::Object(_) => e.to_string(),
                other => format!("top level is {}", super::kind(&other)),
            }));
        }
    };
    CloudEvent::from_attributes(fields)
}

/// A byte that is no UTF-8 where it stands, at some place in the payload, now and then.
fn bad_byte() -> impl Strategy<Value = Option<(prop::sample::Index, u8)>> {
    prop::option::weighted(
        0.2,
        (any::<prop::sample::Index>(), prop::sample::select(vec![0xff_u8, 0xc3, 0x80, 0xed])),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// The parse of a payload as text decides every payload as the parse of its bytes: the same
    /// event or the same error, invalid UTF-8 included.
    #[test]
    fn the_text_parse_decides_as_the_byte_parse(members in members(), damage in damage(), bad in bad_byte()) {
        let mut bytes = payload(&members, &damage).into_bytes();
        if let Some((at, byte)) = bad {
            let at = at.index(bytes.len() + 1);
            bytes.insert(at, byte);
        }
        prop_assert_eq!(CloudEvent::parse(&bytes), parse_as_bytes(&bytes), "{}", String::from_utf8_lossy(&bytes));
    }
}

/// Invalid UTF-8 inside a string, and outside one, gets the byte parser's error.
#[test]
fn invalid_utf8_gets_the_byte_parsers_error() {
    let attrs = r#""specversion":"1.0","id":"x","source":"s","time":"2025-03-04T05:06:07Z","type":"gpu.xid""#;
    for (i, bytes) in [
        [format!(r#"{{{attrs},"data":{{"a":""#).as_bytes(), &[0xff], br#""}}"#].concat(),
        [format!(r#"{{{attrs},"data":"#).as_bytes(), &[0xc3], b"}"].concat(),
        [format!(r#"{{{attrs},"subject":""#).as_bytes(), &[0xed, 0xa0, 0x80], br#""}"#].concat(),
    ]
    .iter()
    .enumerate()
    {
        let err = CloudEvent::parse(bytes).expect_err("invalid UTF-8");
        assert_eq!(Err(err.clone()), parse_as_bytes(bytes), "case {i}");
        assert!(matches!(err, CloudEventError::Json(_)), "case {i}: {err}");
    }
}
