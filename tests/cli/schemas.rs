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
    assert_eq!(EVENT_TYPES.len(), 31, "DESIGN §5 lists 29 v1 types; the evidence gate adds two");
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

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// `data` of the valid example of `ty` with `field` (a top-level member) set to the JSON text
/// `number`, written as given.
fn example_with(ty: &str, field: &str, number: &str) -> Value {
    let mut data = read_json(&schemas_dir("examples").join(format!("{ty}.json")));
    data[field] = parse(number);
    data
}

#[test]
fn integer_fields_take_only_integers_of_their_range() {
    // JSON Schema's `integer` takes all of these; none fits a 64-bit column.
    for bad in ["100.0", "1e2", "1E2", "1.0e2", "1e30", "18446744073709551616", "-0", "-0.0", "0.5"] {
        let data = example_with("metric.recorded", "step", bad);
        match validate("metric.recorded", &data) {
            Err(SchemaError::Invalid { path, message, .. }) => {
                assert_eq!(path, "/step", "{bad}");
                assert!(
                    message.contains("is not an integer from 0 to 18446744073709551615"),
                    "{bad}: {message}"
                );
            }
            other => panic!("step {bad}: {other:?}"),
        }
        // The same at append's door says which event, field and why.
        let e = validate("metric.recorded", &data).unwrap_err().to_string();
        assert!(e.starts_with("metric.recorded: data/step: "), "{e}");
    }
    for good in ["0", "100", "18446744073709551615"] {
        assert_eq!(
            validate("metric.recorded", &example_with("metric.recorded", "step", good)),
            Ok(()),
            "{good}"
        );
    }
    // Int64 columns: the bounds of i64, and the rule applies to nullable fields, nested
    // fields, array items and open objects too.
    let cases: &[(&str, &str, &str, &str)] = &[
        ("run.finished", "duration_ms", "9223372036854775808", "/duration_ms"),
        ("run.finished", "exit_code", "-9223372036854775809", "/exit_code"),
        ("run.finished", "exit_code", "1e2", "/exit_code"),
        ("run.finished", "signal", "9.0", "/signal"),
        ("run.started", "pid", "31337.0", "/pid"),
        ("gpu.xid", "pid", "1e3", "/pid"),
        ("gpu.xid", "code", "4294967296", "/code"),
        ("gpu.telemetry", "temp_c", "61.0", "/temp_c"),
        ("gpu.telemetry", "power_mw", "9223372036854775808", "/power_mw"),
        ("kernel.launch.completed", "duration_us", "4.1e1", "/duration_us"),
        ("artifact.submitted", "version", "1.0", "/version"),
        ("artifact.superseded", "by", "3e0", "/by"),
        ("run.heartbeat", "processes", "5.0", "/processes"),
    ];
    for (ty, field, bad, path) in cases {
        match validate(ty, &example_with(ty, field, bad)) {
            Err(SchemaError::Invalid { path: p, message, .. }) => {
                assert_eq!(&p, path, "{ty} {field} {bad}");
                assert!(message.contains("is not an integer from"), "{ty} {field} {bad}: {message}");
            }
            other => panic!("{ty} {field} {bad}: {other:?}"),
        }
    }
    let nested: &[(&str, &str, &str)] = &[
        ("artifact.submitted", "/files/0/bytes", "9120.0"),
        ("evidence.captured", "/files/1/bytes", "1e30"),
        ("gpu.telemetry", "/clocks/sm_mhz", "1410.0"),
        ("kernel.launch.completed", "/grid/0", "4096.0"),
        ("gpu.preflight", "/devices/0/memory_bytes", "8.589934592e10"),
        ("audit.attested", "/verdicts/supported", "14.0"),
    ];
    for (ty, pointer, bad) in nested {
        let mut data = read_json(&schemas_dir("examples").join(format!("{ty}.json")));
        *data.pointer_mut(pointer).unwrap_or_else(|| panic!("{ty} {pointer}")) = parse(bad);
        match validate(ty, &data) {
            Err(SchemaError::Invalid { path, message, .. }) => {
                assert_eq!(&path, pointer, "{ty} {bad}");
                assert!(message.contains("is not an integer from"), "{ty} {pointer}: {message}");
            }
            other => panic!("{ty} {pointer} {bad}: {other:?}"),
        }
    }
    // The limits themselves are accepted.
    for (ty, field, good) in [
        ("run.finished", "duration_ms", "9223372036854775807"),
        ("run.finished", "exit_code", "-9223372036854775808"),
        ("gpu.xid", "code", "4294967295"),
        ("gpu.telemetry", "temp_c", "-9223372036854775808"),
    ] {
        assert_eq!(validate(ty, &example_with(ty, field, good)), Ok(()), "{ty} {field} {good}");
    }
}

#[test]
fn number_fields_take_every_json_number_in_range() {
    for good in ["1e308", "-1e308", "-0.0", "-0", "5e-324", "18446744073709551616", "1e30", "100", "-7"] {
        assert_eq!(
            validate("metric.recorded", &example_with("metric.recorded", "value", good)),
            Ok(()),
            "{good}"
        );
    }
    for good in ["0", "-0.0", "100", "100.0", "1e2"] {
        assert_eq!(
            validate("gpu.telemetry", &example_with("gpu.telemetry", "util_gpu_pct", good)),
            Ok(()),
            "{good}"
        );
    }
    assert!(validate("gpu.telemetry", &example_with("gpu.telemetry", "util_gpu_pct", "100.5")).is_err());
    // NaN and infinities are not JSON; a number too large for f64 is not read as one.
    assert!(serde_json::from_str::<Value>("1e400").is_err());
}

#[test]
fn recorded_events_are_checked_without_the_integer_rule() {
    use assay::schema::validate_recorded;
    // What a ledger accepted before integer fields had to be integers of their range still
    // verifies...
    for legacy in ["100.0", "1e2", "1e30", "18446744073709551616"] {
        let data = example_with("metric.recorded", "step", legacy);
        assert!(validate("metric.recorded", &data).is_err(), "{legacy}");
        assert_eq!(validate_recorded("metric.recorded", &data), Ok(()), "{legacy}");
    }
    let data = example_with("run.finished", "duration_ms", "9223372036854775808");
    assert_eq!(validate_recorded("run.finished", &data), Ok(()));
    // ... and every other rule still holds.
    for bad in ["-1", "0.5", "\"100\"", "null"] {
        let data = example_with("metric.recorded", "step", bad);
        assert!(validate_recorded("metric.recorded", &data).is_err(), "{bad}");
    }
    let data = example_with("run.finished", "signal", "129");
    assert!(validate_recorded("run.finished", &data).is_err());
}

/// Every integer schema anywhere in a schema (with the JSON pointer to it).
fn integer_schemas(v: &Value, at: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) => {
            let t = o.get("type");
            if t == Some(&Value::from("integer"))
                || t.and_then(Value::as_array).is_some_and(|ts| ts.contains(&Value::from("integer")))
            {
                out.push((at.clone(), v.clone()));
            }
            for (k, child) in o {
                integer_schemas(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                integer_schemas(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_integer_field_states_its_range() {
    let (lo, hi) = (i128::from(i64::MIN), i128::from(u64::MAX));
    let int = |v: &Value| v.as_i64().map(i128::from).or_else(|| v.as_u64().map(i128::from));
    let mut seen = 0;
    for (ty, text) in SCHEMA_TEXTS {
        let mut found = Vec::new();
        integer_schemas(&serde_json::from_str(text).expect("JSON"), String::new(), &mut found);
        for (at, s) in found {
            seen += 1;
            let min =
                s.get("minimum").and_then(int).unwrap_or_else(|| panic!("{ty} {at}: no integer minimum"));
            let max =
                s.get("maximum").and_then(int).unwrap_or_else(|| panic!("{ty} {at}: no integer maximum"));
            assert!(lo <= min && min <= max && max <= hi, "{ty} {at}: {min}..={max} is not within 64 bits");
            assert!(s.get("oneOf").is_none(), "{ty} {at}");
        }
    }
    assert!(seen >= 26, "{seen} integer fields");
}

/// The valid `claim.asserted` example with `check` replaced.
fn claim_with_check(check: Value) -> Value {
    let mut data = read_json(&schemas_dir("examples").join("claim.asserted.json"));
    data["check"] = check;
    data
}

#[test]
fn group_claims_validate_and_malformed_ones_name_the_field() {
    let group = || {
        parse(
            r#"{"kind": "group", "metric": "val/loss", "runs": ["r-1", "r-2", "r-3"], "agg": "last",
                "stat": "mean", "claimed": {"lo": "3.05", "hi": "3.15"}}"#,
        )
    };
    let compare = || {
        parse(
            r#"{"kind": "compare_groups", "metric": "step_time_s", "runs": ["r-1"], "baseline_runs": ["r-2"],
                "agg": "mean", "stat": "median", "as": "ratio", "claimed": {"hi": "0.73"}, "level": "0.9"}"#,
        )
    };
    let replicated = || {
        parse(
            r#"{"kind": "replicated", "metric": "acc", "agg": "max", "stat": "mean", "as": "difference",
                "claimed": {"lo": "0"}, "pairs": [{"runs": ["a"], "baseline_runs": ["b"]},
                {"runs": ["c", "d"], "baseline_runs": ["e"]}]}"#,
        )
    };
    for check in [group(), compare(), replicated()] {
        assert_eq!(validate("claim.asserted", &claim_with_check(check.clone())), Ok(()), "{check}");
    }
    // Sets (or, with null, removes) the member at `pointer`.
    let with = |mut check: Value, pointer: &str, value: Value| {
        let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
        let at = check.pointer_mut(parent).expect("parent");
        match at.as_object_mut() {
            Some(o) if value.is_null() => {
                o.remove(key);
            }
            Some(o) => {
                o.insert(key.to_owned(), value);
            }
            None => *check.pointer_mut(pointer).expect("pointer") = value,
        }
        check
    };
    let many: Vec<String> = (0..1001).map(|i| format!("r-{i}")).collect();
    // (check, the field the error names, words of the message)
    let cases: Vec<(Value, &str, &str)> = vec![
        (with(group(), "/claimed/lo", Value::from(3.05)), "/check/claimed/lo", "is not of type \"string\""),
        (with(group(), "/claimed/hi", Value::from("3.l5")), "/check/claimed/hi", "does not match"),
        (with(group(), "/claimed", parse("{}")), "/check/claimed", "less than 1 property"),
        (with(group(), "/claimed/mid", Value::from("3")), "/check/claimed", "mid"),
        (with(group(), "/runs", parse("[]")), "/check/runs", "[]"),
        (with(group(), "/runs", parse(r#"["r-1", "r-1"]"#)), "/check/runs", "unique"),
        (
            with(group(), "/runs", serde_json::to_value(&many).unwrap()),
            "/check/runs",
            "has more than 1000 items",
        ),
        (with(group(), "/stat", Value::from("mode")), "/check/stat", "mode"),
        (with(group(), "/level", Value::from("95%")), "/check/level", "does not match"),
        (with(group(), "/level", Value::from(0.95)), "/check/level", "is not of type"),
        (with(group(), "/stat", Value::Null), "/check", "\"stat\" is a required property"),
        (with(group(), "/op", Value::from("lt")), "/check", "op"),
        (with(compare(), "/as", Value::from("percent")), "/check/as", "percent"),
        (with(compare(), "/baseline_runs", Value::Null), "/check", "\"baseline_runs\" is a required"),
        (with(replicated(), "/pairs", parse("[]")), "/check/pairs", "[]"),
        (
            with(replicated(), "/pairs/1/runs/0", Value::from(" bad id")),
            "/check/pairs/1/runs/0",
            "does not match",
        ),
        (with(replicated(), "/pairs/0/seeds", Value::from(1)), "/check/pairs/0", "seeds"),
    ];
    let mut wrong = Vec::new();
    for (check, path, words) in cases {
        match validate("claim.asserted", &claim_with_check(check.clone())) {
            Err(SchemaError::Invalid { path: p, message, .. }) if p == path && message.contains(words) => {}
            other => wrong.push(format!("{check}: want {path} {words:?}, got {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // An unknown kind matches no branch: the error says so about the whole check.
    match validate("claim.asserted", &claim_with_check(parse(r#"{"kind": "groups"}"#))) {
        Err(SchemaError::Invalid { path, message, .. }) => {
            assert_eq!(path, "/check");
            assert!(message.contains("oneOf"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_artifact_may_require_preregistration() {
    let mut data = read_json(&schemas_dir("examples").join("artifact.submitted.json"));
    assert_eq!(validate("artifact.submitted", &data), Ok(()));
    data["require_preregistration"] = Value::from(true);
    assert_eq!(validate("artifact.submitted", &data), Ok(()));
    data["require_preregistration"] = Value::from("yes");
    assert!(validate("artifact.submitted", &data).is_err());
}
