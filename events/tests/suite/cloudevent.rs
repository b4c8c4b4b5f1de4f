//! CloudEvents 1.0 payload parsing.

use assay_events::cloudevent::{CloudEvent, CloudEventError};
use serde_json::{Value, json};

fn base() -> Value {
    json!({
        "specversion": "1.0",
        "id": "0190f0c4-7b7e-7c1a-9f00-000000000001",
        "source": "assay:key/runner-gpu0",
        "type": "gpu.xid",
        "subject": "gpu/0000:01:00.0",
        "time": "2025-03-04T05:06:07.5+02:00",
        "datacontenttype": "application/json",
        "data": {"code": 79}
    })
}

fn parse(v: &Value) -> Result<CloudEvent, CloudEventError> {
    CloudEvent::parse(&serde_json::to_vec(v).unwrap())
}

fn without(field: &str) -> Value {
    let mut v = base();
    v.as_object_mut().unwrap().remove(field);
    v
}

fn with(field: &str, value: Value) -> Value {
    let mut v = base();
    v[field] = value;
    v
}

#[test]
fn parses_a_valid_event() {
    let e = parse(&base()).unwrap();
    assert_eq!(e.specversion, "1.0");
    assert_eq!(e.ty, "gpu.xid");
    assert_eq!(e.subject.as_deref(), Some("gpu/0000:01:00.0"));
    assert_eq!(e.data["code"], 79);
    // 2025-03-04T03:06:07.5Z
    assert_eq!(e.time_ns().unwrap(), 1_741_057_567_500_000_000);
    assert_eq!(CloudEvent::parse(&e.to_bytes()).unwrap(), e);

    let minimal = parse(&without("subject")).unwrap();
    assert_eq!(minimal.subject, None);
    assert!(parse(&without("datacontenttype")).unwrap().datacontenttype.is_none());
    assert_eq!(parse(&without("data")).unwrap().data, Value::Null);
}

#[test]
fn each_required_field_is_named_when_missing() {
    for field in ["specversion", "id", "source", "type", "time"] {
        let err = parse(&without(field)).unwrap_err();
        assert_eq!(err, CloudEventError::Missing(field));
        assert!(err.to_string().contains(field));
        assert_eq!(parse(&with(field, Value::Null)).unwrap_err(), CloudEventError::Missing(field));
    }
}

#[test]
fn each_field_is_named_when_invalid() {
    let cases = [
        ("specversion", json!("0.3")),
        ("specversion", json!(1.0)),
        ("id", json!("")),
        ("id", json!(7)),
        ("source", json!("")),
        ("source", json!(["a"])),
        ("type", json!("")),
        ("type", json!({})),
        ("subject", json!("")),
        ("subject", json!(false)),
        ("time", json!("yesterday")),
        ("time", json!("2025-13-01T00:00:00Z")),
        ("time", json!("2025-01-01T00:00:00")),
        ("time", json!(1_700_000_000)),
        ("datacontenttype", json!("text/plain")),
    ];
    for (field, value) in cases {
        let err = parse(&with(field, value.clone())).unwrap_err();
        match &err {
            CloudEventError::Invalid { field: f, .. } => assert_eq!(*f, field, "{value}"),
            other => panic!("{field}={value}: {other:?}"),
        }
        assert!(err.to_string().contains(field));
    }
}

#[test]
fn non_objects_are_rejected() {
    for bad in [&b"[]"[..], b"\"x\"", b"null", b"{", b""] {
        assert!(matches!(CloudEvent::parse(bad), Err(CloudEventError::Json(_))));
    }
}

#[test]
fn time_range() {
    let e = parse(&with("time", json!("2300-01-01T00:00:00Z"))).unwrap();
    assert!(matches!(e.time_ns(), Err(CloudEventError::Invalid { field: "time", .. })));
    let e = parse(&with("time", json!("1970-01-01T00:00:00Z"))).unwrap();
    assert_eq!(e.time_ns().unwrap(), 0);
}

fn submitted(v: &Value) -> Result<CloudEvent, CloudEventError> {
    CloudEvent::parse_submitted(&serde_json::to_vec(v).unwrap())
}

#[test]
fn new_events_hold_no_control_characters_in_their_attributes() {
    assert!(submitted(&base()).is_ok());
    for field in ["id", "source", "type", "subject"] {
        for c in ['\0', '\u{1}', '\n', '\u{7f}', '\u{9f}'] {
            let value = format!("{}{c}x", base()[field].as_str().unwrap());
            let err = submitted(&with(field, json!(value))).unwrap_err();
            assert!(
                matches!(&err, CloudEventError::Invalid { field: f, .. } if *f == field),
                "{field}: {err}"
            );
            assert!(err.to_string().contains(&format!("U+{:04X}", u32::from(c))), "{err}");
            // Stored records are still read as they are.
            assert!(parse(&with(field, json!(value))).is_ok(), "{field}");
        }
    }
}

#[test]
fn new_events_have_bounded_attributes() {
    let cases = [("id", 256), ("source", 256), ("type", 128), ("subject", 256)];
    for (field, max) in cases {
        assert!(submitted(&with(field, json!("a".repeat(max)))).is_ok(), "{field} at {max}");
        let err = submitted(&with(field, json!("a".repeat(max + 1)))).unwrap_err();
        assert!(err.to_string().contains(&format!("limit is {max}")), "{err}");
    }
    let err = submitted(&with("id", json!("x".repeat(10_000)))).unwrap_err();
    assert!(err.to_string().contains("10000 characters"), "{err}");
    // time: RFC 3339 in the years 1970..=2261 (UTC), at most 64 characters.
    for ok in ["1970-01-01T00:00:00Z", "2261-12-31T23:59:59.999999999Z", "2025-06-01T12:00:00+02:00"] {
        assert!(submitted(&with("time", json!(ok))).is_ok(), "{ok}");
    }
    for bad in [
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",
        "2262-01-01T00:00:00Z",
    ] {
        let err = submitted(&with("time", json!(bad))).unwrap_err();
        assert!(matches!(&err, CloudEventError::Invalid { field: "time", .. }), "{bad}: {err}");
        assert!(err.to_string().contains("1970 to 2261"), "{err}");
    }
    let long = format!("2025-06-01T12:00:00.{}Z", "1".repeat(60));
    assert!(submitted(&with("time", json!(long))).unwrap_err().to_string().contains("limit is 64"));
}

#[test]
fn new_events_hold_each_key_once_at_every_depth() {
    let ok = serde_json::to_string(&base()).unwrap();
    let cases = [
        (ok.replacen("{", r#"{"id":"first","#, 1), "/id"),
        (ok.replace(r#""code":79"#, r#""code":79,"code":80"#), "/data/code"),
        (ok.replace(r#""code":79"#, r#""code":79,"x":{"y":[{"z":1,"z":1}]}"#), "/data/x/y/0/z"),
    ];
    for (json, path) in cases {
        let err = CloudEvent::parse_submitted(json.as_bytes()).unwrap_err();
        assert!(matches!(&err, CloudEventError::DuplicateKey(_)), "{err}");
        assert!(err.to_string().contains(&format!("duplicate key {path}")), "{err}");
        assert!(CloudEvent::parse(json.as_bytes()).is_ok(), "stored records are read as they are");
    }
}

/// `dataschema` is optional (events signed before producers wrote it have none); on a new
/// event of a v1 type it must name that type's schema.
#[test]
fn dataschema_names_the_types_schema_when_present() {
    let ty = base()["type"].as_str().unwrap().to_owned();
    let id = assay_events::EventType::parse(&ty).unwrap().schema_id();
    assert_eq!(id, format!("https://assay.dev/schemas/events/{ty}.json"));
    assert_eq!(submitted(&base()).unwrap().dataschema, None);
    assert_eq!(submitted(&with("dataschema", json!(id))).unwrap().dataschema.as_deref(), Some(id));
    let other = "https://assay.dev/schemas/events/run.queued.json";
    let err = submitted(&with("dataschema", json!(other))).unwrap_err();
    assert!(err.to_string().contains("dataschema") && err.to_string().contains(id), "{err}");
    assert!(submitted(&with("dataschema", json!(7))).is_err());
    // Stored records are read whatever their dataschema says.
    assert!(parse(&with("dataschema", json!(other))).is_ok());
    // A type outside v1 may name any schema.
    let mut later = with("dataschema", json!("https://example.com/s.json"));
    later["type"] = json!("run.queued.v2");
    assert!(submitted(&later).is_ok());
}

/// The one-pass parse reads a payload as a map of the object would: the last member where a
/// name repeats, escaped names unescaped, nulls as absent, other members parsed and dropped
/// (so a number out of range anywhere is still refused), and a JSON error is the parser's own.
#[test]
fn payload_members_are_read_as_a_map_of_the_object_reads_them() {
    let attrs = r#""specversion":"1.0","source":"s","time":"2025-03-04T05:06:07Z""#;
    let cases = [
        format!(
            r#"{{{attrs},"id":"first","type":"gpu.xid","id":"last","data":{{"code":1}},"data":{{"code":2}}}}"#
        ),
        format!(
            r#"{{{attrs},"\u0069d":"escaped","typ\u0065":"gpu.xid","subject":null,"data":{{"code":3}}}}"#
        ),
        format!(r#"{{{attrs},"id":"x","type":"gpu.xid","ext":{{"deep":[1,{{"a":null}}]}},"data":null}}"#),
        format!(r#"{{"id":"x","type":"gpu.xid",{attrs},"dataschema":null,"datacontenttype":null}}"#),
    ];
    for text in &cases {
        let e = CloudEvent::parse(text.as_bytes()).unwrap();
        let map: serde_json::Map<String, Value> = serde_json::from_str(text).unwrap();
        let s = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_owned);
        assert_eq!(Some(e.id.clone()), s("id"), "{text}");
        assert_eq!(Some(e.ty.clone()), s("type"), "{text}");
        assert_eq!(e.subject, s("subject"), "{text}");
        assert_eq!(e.dataschema, s("dataschema"), "{text}");
        assert_eq!(e.data, map.get("data").cloned().unwrap_or(Value::Null), "{text}");
    }
    let refused = [
        format!(r#"{{{attrs},"id":"x","type":"gpu.xid","ext":1e400}}"#),
        format!(r#"{{{attrs},"id":"x","type":"gpu.xid"}} trailing"#),
        format!(r#"{{{attrs},"id":"x","type":"gpu.xid","ext":{}}}"#, "[".repeat(200) + &"]".repeat(200)),
        format!(r#"{{{attrs},"id":"x","type":"gpu.xid""#),
    ];
    for text in &refused {
        let expected = serde_json::from_str::<Value>(text).unwrap_err().to_string();
        assert_eq!(CloudEvent::parse(text.as_bytes()), Err(CloudEventError::Json(expected)), "{text}");
    }
    assert_eq!(
        CloudEvent::parse(b"[1]"),
        Err(CloudEventError::Json("top level is an array".into())),
        "a non-object says what it is"
    );
}
