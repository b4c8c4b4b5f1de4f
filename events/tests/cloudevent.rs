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
