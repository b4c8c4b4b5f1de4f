//! Every v1 event type has a schema; every example validates and every invalid example fails.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assay::schema::{SCHEMA_TEXTS, SchemaError, known, validate};
use assay_events::roles::EVENT_TYPES;
use serde_json::Value;

fn schemas_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(sub)
}

/// The event types named by `<type>.json` files in a folder.
fn types_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.file_stem().and_then(|s| s.to_str()).expect("UTF-8 name").to_owned())
        .collect()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn all_types() -> BTreeSet<String> {
    EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect()
}

#[test]
fn every_event_type_has_exactly_one_schema() {
    assert_eq!(EVENT_TYPES.len(), 29, "DESIGN §5 lists 29 v1 types");
    for ty in EVENT_TYPES {
        assert!(known(ty), "{ty} has no compiled schema");
    }
    // The files on disk, the compiled-in texts and the type list agree one to one.
    assert_eq!(types_in(&schemas_dir("events")), all_types(), "schemas/events/*.json");
    let compiled: BTreeSet<String> = SCHEMA_TEXTS.iter().map(|(t, _)| (*t).to_owned()).collect();
    assert_eq!(compiled, all_types(), "schema::SCHEMA_TEXTS");
    assert_eq!(SCHEMA_TEXTS.len(), EVENT_TYPES.len(), "no type compiled twice");
    for (ty, text) in SCHEMA_TEXTS {
        let file = schemas_dir("events").join(format!("{ty}.json"));
        assert_eq!(
            std::fs::read_to_string(&file).expect("schema file"),
            *text,
            "{ty}: the binary holds the file"
        );
        let schema = read_json(&file);
        assert_eq!(schema["title"], *ty, "{ty}: title");
        assert_eq!(schema["type"], "object", "{ty}: data is an object");
    }
    // Unknown types have no schema and are refused as such.
    for ty in ["", "metric", "metric.recorded.v2", "Metric.Recorded", "key.foo"] {
        assert!(!known(ty), "{ty:?}");
        assert_eq!(validate(ty, &Value::Null), Err(SchemaError::UnknownType(ty.to_owned())));
    }
}

#[test]
fn every_example_validates() {
    assert_eq!(types_in(&schemas_dir("examples")), all_types(), "one example per type");
    for ty in EVENT_TYPES {
        let data = read_json(&schemas_dir("examples").join(format!("{ty}.json")));
        if let Err(e) = validate(ty, &data) {
            panic!("schemas/examples/{ty}.json: {e}");
        }
    }
}

#[test]
fn every_invalid_example_fails() {
    assert_eq!(types_in(&schemas_dir("examples/invalid")), all_types(), "one invalid example per type");
    for ty in EVENT_TYPES {
        let data = read_json(&schemas_dir("examples/invalid").join(format!("{ty}.json")));
        match validate(ty, &data) {
            Err(SchemaError::Invalid { ty: t, message, .. }) => {
                assert_eq!(t, *ty);
                assert!(!message.is_empty(), "{ty}: the error says why");
            }
            other => panic!("schemas/examples/invalid/{ty}.json: expected a violation, got {other:?}"),
        }
        // An invalid example is not invalid for a trivial reason: it is still an object and
        // the valid example of another type does not pass this type's schema by accident.
        assert!(data.is_object(), "{ty}: invalid example is an object");
    }
}

#[test]
fn a_valid_example_fails_when_closed_objects_gain_a_member() {
    // `additionalProperties: false` on the top level of every closed type.
    for ty in EVENT_TYPES {
        let schema = read_json(&schemas_dir("events").join(format!("{ty}.json")));
        if schema["additionalProperties"] != Value::Bool(false) {
            continue;
        }
        let mut data = read_json(&schemas_dir("examples").join(format!("{ty}.json")));
        data.as_object_mut().expect("an object").insert("unexpected_member".into(), Value::from(1));
        assert!(validate(ty, &data).is_err(), "{ty} accepts an unknown member");
    }
}
