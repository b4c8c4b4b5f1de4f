//! Numbers, end to end. The schemas and the Parquet export agree on every integer and number
//! field of every v1 type: each integer field takes exactly the integers its column holds, so
//! the value at each edge of what a schema accepts is appended, exported cell for cell and
//! verified; values past the edges (`100.0`, `1e2`, `1e30`, one past a bound) are refused at
//! append with the field named, and nothing is stored. A ledger written before the integer rule,
//! holding such values, still verifies and exports.

use crate::support::export as export_support;

use std::collections::BTreeMap;

use arrow_array::{Array, Float64Array, Int64Array, RecordBatch, UInt64Array};
use assay::export::columns::Kind;
use assay::export::typed::EVENT_TABLES;
use assay::schema::{SCHEMA_TEXTS, SchemaError, validate, validate_recorded};
use export_support::{Demo, assay, files_of, read};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The numeric fields of each type, found by walking its example `data` with its schema.

fn schema_of(ty: &str) -> Value {
    let text = SCHEMA_TEXTS.iter().find(|(t, _)| *t == ty).map(|(_, s)| *s).expect("a schema");
    serde_json::from_str(text).expect("JSON")
}

fn example(ty: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/examples/{ty}.json"));
    serde_json::from_slice(&std::fs::read(&path).expect("the example")).expect("JSON")
}

fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
        Some(name) => resolve(root, &root["$defs"][name]),
        None => s,
    }
}

fn types_of(s: &Value) -> Vec<&str> {
    match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The numeric schema of `s`: itself, or its `oneOf` branch that is a number.
fn numeric<'a>(root: &'a Value, s: &'a Value) -> Option<&'a Value> {
    let s = resolve(root, s);
    if types_of(s).iter().any(|t| *t == "integer" || *t == "number") {
        return Some(s);
    }
    s.get("oneOf")?.as_array()?.iter().find_map(|b| numeric(root, b))
}

fn walk(root: &Value, schema: &Value, data: &Value, at: &str, out: &mut Vec<(String, Value)>) {
    let schema = resolve(root, schema);
    match data {
        Value::Number(_) => {
            if let Some(n) = numeric(root, schema) {
                out.push((at.to_owned(), n.clone()));
            }
        }
        Value::Object(o) => {
            for (k, v) in o {
                let sub = schema
                    .get("properties")
                    .and_then(|p| p.get(k))
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(sub) = sub {
                    walk(root, sub, v, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(root, sub, v, &format!("{at}/{i}"), out);
                }
            }
        }
        _ => {}
    }
}

/// Every numeric field of `ty`: (JSON pointer into `data`, its schema). Numbers of the example,
/// and top-level numeric members the example leaves out or null.
fn numeric_fields(ty: &str) -> Vec<(String, Value)> {
    let root = schema_of(ty);
    let data = example(ty);
    let mut out = Vec::new();
    walk(&root, &root, &data, "", &mut out);
    for (k, sub) in root["properties"].as_object().expect("properties") {
        if data.get(k).is_none_or(Value::is_null)
            && let Some(n) = numeric(&root, sub)
        {
            out.push((format!("/{k}"), n.clone()));
        }
    }
    out
}

fn is_integer(s: &Value) -> bool {
    types_of(s).contains(&"integer")
}

fn bound(s: &Value, k: &str) -> Option<i128> {
    let v = s.get(k)?;
    v.as_i64().map(i128::from).or_else(|| v.as_u64().map(i128::from))
}

fn fbound(s: &Value, k: &str) -> Option<f64> {
    s.get(k).and_then(Value::as_f64)
}

/// JSON texts an accepted event may hold in a field of schema `s`: its edges.
fn edges(s: &Value) -> Vec<String> {
    if is_integer(s) {
        let (min, max) = (bound(s, "minimum").expect("a minimum"), bound(s, "maximum").expect("a maximum"));
        return vec![min.to_string(), max.to_string()];
    }
    let (min, max) = (fbound(s, "minimum").unwrap_or(f64::MIN), fbound(s, "maximum").unwrap_or(f64::MAX));
    let mut out: Vec<String> = ["1e308", "-1e308", "-0.0", "5e-324", "18446744073709551616", "1e30"]
        .into_iter()
        .filter(|t| t.parse::<f64>().is_ok_and(|v| min <= v && v <= max))
        .map(str::to_owned)
        .collect();
    if max < f64::MAX {
        out.push(format!("{max:?}"));
    }
    out
}

/// JSON texts that an integer field of schema `s` must refuse, though JSON Schema's `integer`
/// takes the first three.
fn refused(s: &Value) -> Vec<String> {
    let (min, max) = (bound(s, "minimum").expect("a minimum"), bound(s, "maximum").expect("a maximum"));
    let mut out = vec![
        format!("{min}.0"),
        format!("{min}e0"),
        format!("{max}.0"),
        (min - 1).to_string(),
        (max + 1).to_string(),
    ];
    if (min..=max).contains(&100) {
        out.push("1e2".into());
    }
    if max < 10i128.pow(30) {
        out.push("1e30".into());
    }
    out
}

/// `data` with the member at `pointer` set to `value` (created when a top-level member).
fn with(mut data: Value, pointer: &str, value: Value) -> Value {
    match data.pointer_mut(pointer) {
        Some(slot) => *slot = value,
        None => data[&pointer[1..]] = value,
    }
    data
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Types with a numeric field that a producer may append (the ledger's own are left out: it
/// writes their numbers itself, from the requests'), with the demo key that signs them.
const PRODUCED: &[(&str, &str)] = &[
    ("run.started", "runner-gpu-node-1"),
    ("run.heartbeat", "runner-gpu-node-1"),
    ("run.finished", "runner-gpu-node-1"),
    ("run.quiesced", "runner-gpu-node-1"),
    ("evidence.captured", "runner-gpu-node-1"),
    ("metric.recorded", "runner-gpu-node-1"),
    ("kernel.launch.completed", "runner-gpu-node-1"),
    ("gpu.preflight", "runner-gpu-node-1"),
    ("gpu.telemetry", "runner-gpu-node-1"),
    ("gpu.xid", "runner-gpu-node-1"),
    ("artifact.submitted", "author-mchen"),
    ("artifact.superseded", "admin"),
    ("audit.attested", "auditor"),
];

fn subject(ty: &str, data: &Value) -> String {
    let f = |k: &str| data[k].as_str().expect(k).to_owned();
    match ty.split('.').next() {
        Some("run" | "metric" | "kernel" | "evidence") => format!("run/{}", f("run")),
        _ if ty == "gpu.preflight" => format!("worker/{}", f("host")),
        Some("gpu") => format!("gpu/{}", f("pci")),
        Some("artifact") => format!("artifact/{}", f("slug")),
        _ => "ledger".to_owned(),
    }
}

fn event(ty: &str, data: Value) -> Value {
    json!({"type": ty, "subject": subject(ty, &data), "data": data})
}

// ---------------------------------------------------------------------------------------------

#[test]
fn every_integer_field_takes_exactly_the_integers_of_its_range() {
    let mut integer_fields = 0;
    for (ty, _) in SCHEMA_TEXTS {
        let fields = numeric_fields(ty);
        if SCHEMA_TEXTS.iter().any(|(t, text)| t == ty && text.contains("\"integer\"")) {
            assert!(fields.iter().any(|(_, s)| is_integer(s)), "{ty}: its integer fields were not found");
        }
        for (pointer, s) in fields {
            for text in edges(&s) {
                let data = with(example(ty), &pointer, parse(&text));
                assert_eq!(validate(ty, &data), Ok(()), "{ty} {pointer} = {text}");
            }
            if !is_integer(&s) {
                continue;
            }
            integer_fields += 1;
            let (min, max) = (bound(&s, "minimum").expect("min"), bound(&s, "maximum").expect("max"));
            for text in refused(&s) {
                let data = with(example(ty), &pointer, parse(&text));
                match validate(ty, &data) {
                    Err(SchemaError::Invalid { path, message, .. }) => {
                        assert_eq!(path, pointer, "{ty} {pointer} = {text}: {message}");
                        assert!(
                            message.contains(&format!("is not an integer from {min} to {max}")),
                            "{ty} {pointer} = {text}: {message}"
                        );
                    }
                    other => panic!("{ty} {pointer} = {text}: accepted ({other:?})"),
                }
            }
        }
    }
    assert!(integer_fields >= 30, "{integer_fields} integer fields");
}

#[test]
fn integer_columns_hold_their_fields_whole_range() {
    // Every typed-table column taken from an integer field of the types it takes: the field's
    // range lies within the column type's.
    let mut checked = 0;
    for t in EVENT_TABLES {
        for ty in t.types {
            let root = schema_of(ty.as_str());
            for c in t.columns.iter().filter(|c| matches!(c.kind, Kind::I64 | Kind::U64)) {
                let Some(s) = root["properties"].get(c.name).and_then(|s| numeric(&root, s)) else {
                    continue;
                };
                let (min, max) = (bound(s, "minimum").expect("min"), bound(s, "maximum").expect("max"));
                let (lo, hi) = match c.kind {
                    Kind::I64 => (i128::from(i64::MIN), i128::from(i64::MAX)),
                    _ => (0, i128::from(u64::MAX)),
                };
                assert!(lo <= min && max <= hi, "{ty} {}: {min}..={max} does not fit {:?}", c.name, c.kind);
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "{checked} columns");
}

/// The events of the edge test: one per (type, numeric field, edge value).
fn edge_events() -> BTreeMap<&'static str, Vec<Value>> {
    let mut by_key: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for (ty, key) in PRODUCED {
        for (pointer, s) in numeric_fields(ty) {
            for text in edges(&s) {
                by_key.entry(key).or_default().push(event(ty, with(example(ty), &pointer, parse(&text))));
            }
        }
    }
    // Two files of 2^64 - 1 bytes each: the artifact's total does not fit in 64 bits.
    let mut data = example("artifact.submitted");
    let file = data["files"][0].clone();
    data["files"] = json!([
        with(with(file.clone(), "/path", json!("a.bin")), "/bytes", json!(u64::MAX)),
        with(with(file, "/path", json!("b.bin")), "/bytes", json!(u64::MAX)),
    ]);
    data["version"] = json!(7);
    by_key.entry("author-mchen").or_default().push(event("artifact.submitted", data));
    by_key
}

/// A cell of a one-row batch as JSON (null for null).
fn cell(b: &RecordBatch, name: &str) -> Value {
    let c = b.column_by_name(name).expect("a column");
    if c.is_null(0) {
        return Value::Null;
    }
    if let Some(a) = c.as_any().downcast_ref::<UInt64Array>() {
        return json!(a.value(0));
    }
    if let Some(a) = c.as_any().downcast_ref::<Int64Array>() {
        return json!(a.value(0));
    }
    if let Some(a) = c.as_any().downcast_ref::<Float64Array>() {
        return json!(a.value(0));
    }
    panic!("{name}: not a number column")
}

/// Every row of `table` as one-row batches by seq.
fn rows_by_seq(dir: &std::path::Path, table: &str) -> BTreeMap<u64, RecordBatch> {
    let mut out = BTreeMap::new();
    for rel in files_of(dir, table) {
        for b in read(&dir.join(rel)) {
            let seqs =
                b.column_by_name("seq").and_then(|c| c.as_any().downcast_ref::<UInt64Array>().cloned());
            let seqs = seqs.expect("seq");
            for i in 0..b.num_rows() {
                out.insert(seqs.value(i), b.slice(i, 1));
            }
        }
    }
    out
}

#[test]
fn every_accepted_edge_value_exports_and_verifies() {
    let demo = Demo::new(3);
    let before = demo.log().len();
    for (key, events) in edge_events() {
        demo.append(key, &events).ok();
    }
    let log = demo.log();
    assert!(log.len() > before + 60, "{} events appended", log.len() - before);

    let out = demo.path("export");
    demo.export(&out, &[]).ok();
    let (code, report) = demo.verify_export(&out);
    assert_eq!(code, 0, "{report}");
    assay(&["verify", "--db", &demo.db()]).ok();

    // Each appended event's integer and number fields come out exactly, in their columns.
    let mut cells = 0;
    for t in EVENT_TABLES {
        let rows = rows_by_seq(&out, t.name);
        for r in &log[before..] {
            if !t.types.iter().any(|ty| ty.as_str() == r["type"].as_str().expect("type")) {
                continue;
            }
            let seq = r["seq"].as_u64().expect("seq");
            let row = rows.get(&seq).unwrap_or_else(|| panic!("{} has no row for seq {seq}", t.name));
            let data = &r["event"]["data"];
            for c in t.columns.iter().filter(|c| matches!(c.kind, Kind::I64 | Kind::U64 | Kind::F64)) {
                let Some(want) = data.get(c.name).filter(|v| v.is_number()) else { continue };
                let got = cell(row, c.name);
                if c.kind == Kind::F64 {
                    let (w, g) = (want.as_f64().expect("f64"), got.as_f64().expect("a value"));
                    assert_eq!(w.to_bits(), g.to_bits(), "{} seq {seq} {}: {want} vs {got}", t.name, c.name);
                } else {
                    assert_eq!(&got, want, "{} seq {seq} {}", t.name, c.name);
                }
                cells += 1;
            }
        }
    }
    assert!(cells > 100, "{cells} cells compared");
    // The artifact whose files' bytes overflow 64 bits: `bytes` is null, the rest is there.
    let artifacts = rows_by_seq(&out, "artifacts");
    let overflow = log[before..]
        .iter()
        .find(|r| r["type"] == "artifact.submitted" && r["event"]["data"]["version"] == 7)
        .expect("the overflowing submission");
    let row = &artifacts[&overflow["seq"].as_u64().expect("seq")];
    assert_eq!(cell(row, "bytes"), Value::Null);
    assert_eq!(cell(row, "files"), json!(2));
}

#[test]
fn values_past_a_fields_range_are_refused_at_append() {
    let demo = Demo::new(3);
    let before = demo.log().len();
    let cases: &[(&str, &str, &str, &str)] = &[
        ("metric.recorded", "/step", "100.0", "0 to 18446744073709551615"),
        ("metric.recorded", "/step", "1e2", "0 to 18446744073709551615"),
        ("metric.recorded", "/step", "1e30", "0 to 18446744073709551615"),
        ("metric.recorded", "/step", "18446744073709551616", "0 to 18446744073709551615"),
        ("run.finished", "/duration_ms", "9223372036854775808", "0 to 9223372036854775807"),
        ("gpu.xid", "/pid", "1e3", "0 to 9223372036854775807"),
        ("gpu.telemetry", "/clocks/sm_mhz", "1410.0", "0 to 18446744073709551615"),
    ];
    for (ty, pointer, text, range) in cases {
        let bad = event(ty, with(example(ty), pointer, parse(text)));
        let out = demo.append("runner-gpu-node-1", &[bad]);
        assert_eq!(out.code, 2, "{ty} {pointer} = {text}: {out:?}");
        assert!(
            out.stderr.contains(&format!("{ty}: data{pointer}: ")) && out.stderr.contains(range),
            "{ty} {pointer} = {text}: {}",
            out.stderr
        );
    }
    assert_eq!(demo.log().len(), before, "nothing stored");
}

// ---------------------------------------------------------------------------------------------
// A ledger written before the integer rule.

/// Appends events as a ledger written before the integer rule would have stored them: each
/// `(type, subject, data)` with `data` as JSON text, verbatim, signed by the demo's key `key`,
/// chained and in the tree, under a new checkpoint signed by the ledger key. Returns their seqs.
async fn append_as_before(demo: &Demo, key: &str, events: &[(&str, &str, &str)]) -> Vec<u64> {
    use assay::keyfile::read_signer;
    use assay::store::{CheckpointRow, CommitBatch, Durability, HeadRow, RecordRow, Store};
    use assay_events::checkpoint::Checkpoint;
    use assay_events::cloudevent::{CloudEvent, event_digest};
    use assay_events::dsse::{DecodedEnvelope, signatures_canonical_json};
    use assay_events::merkle::{Frontier, leaf_hash};
    use assay_events::record::Record;

    let store = Store::open(&demo.db(), Durability::Full, false).await.expect("the store");
    let head = store.head().await.expect("head").expect("a ledger");
    let last = store.records(head.size - 1, 1).await.expect("the last record").remove(0);
    let note = store.checkpoint_at(head.checkpoint_size).await.expect("cp").expect("cp").note;
    let origin = note.lines().next().expect("an origin").to_owned();
    let signer = read_signer(&demo.keys().join(format!("{key}.key"))).expect("the key");
    let ledger = read_signer(&demo.keys().join("ledger.key")).expect("the ledger key");
    let mut frontier = Frontier::from_bytes(head.size, &head.frontier).expect("the frontier");
    let mut batch = CommitBatch { base_size: head.size, ..CommitBatch::default() };
    let (mut prev, mut received) = (head.record_hash, last.received_at_ns);
    let mut seqs = Vec::new();
    for (i, (ty, subject, data)) in events.iter().enumerate() {
        let payload = format!(
            r#"{{"specversion":"1.0","id":"before-the-rule-{i}","source":"assay:key/{key}","type":"{ty}","subject":"{subject}","time":"2026-01-01T00:00:00Z","datacontenttype":"application/json","data":{data}}}"#
        )
        .into_bytes();
        let event = CloudEvent::parse(&payload).expect("a CloudEvent");
        assert!(validate(ty, &event.data).is_err(), "{ty} {data}: the ledger now refuses it");
        assert_eq!(validate_recorded(ty, &event.data), Ok(()), "{ty} {data}: plain JSON Schema takes it");
        let digest = event_digest(&payload);
        let env = DecodedEnvelope::sign(payload.clone(), &signer);
        received += 1;
        let seq = frontier.size();
        let record = Record::from_parts(seq, received, payload, env.signatures, prev, event, digest);
        batch.nodes.extend(frontier.push(leaf_hash(&record.leaf())));
        prev = record.record_hash;
        batch.records.push(RecordRow::from_record(&record, signatures_canonical_json(&record.signatures)));
        seqs.push(seq);
    }
    let (size, root) = (frontier.size(), frontier.root());
    let note = Checkpoint { origin, size, root }.sign(&ledger);
    batch.checkpoints = vec![CheckpointRow { size, root, note, signed_at_ns: received }];
    batch.head =
        Some(HeadRow { size, record_hash: prev, frontier: frontier.to_bytes(), checkpoint_size: size });
    store.commit(&batch).await.expect("commit");
    store.close().await;
    seqs
}

#[tokio::test]
async fn a_ledger_from_before_the_integer_rule_verifies_and_exports() {
    // The seed most export tests use: built once per test process, copied here.
    let demo = Demo::new(7);
    let metric =
        |step: &str| format!(r#"{{"run":"r-before","name":"before/loss","step":{step},"value":1.5}}"#);
    let (m100, m1e2, m1e30, m2_64) =
        (metric("100.0"), metric("1e2"), metric("1e30"), metric("18446744073709551616"));
    let runner: &[(&str, &str, &str)] = &[
        ("metric.recorded", "run/r-before", &m100),
        ("metric.recorded", "run/r-before", &m1e2),
        ("metric.recorded", "run/r-before", &m1e30),
        ("metric.recorded", "run/r-before", &m2_64),
        (
            "run.finished",
            "run/r-before",
            r#"{"run":"r-before","exit_code":0.0,"duration_ms":9223372036854775808}"#,
        ),
        (
            "gpu.xid",
            "gpu/0000:01:00.0",
            r#"{"host":"gpu-node-1","pci":"0000:01:00.0","code":1e30,"pid":7.0,"process":null,"message":"m","source":"kmsg","severity":"unknown","action":"UNKNOWN"}"#,
        ),
        (
            "gpu.telemetry",
            "gpu/0000:01:00.0",
            r#"{"host":"gpu-node-1","uuid":"GPU-34d7319c-5b19-1e75-186d-c187099e4fe5","pci":"0000:01:00.0","temp_c":-5e1,"power_mw":1e30,"util_gpu_pct":97,"mem_used_bytes":0,"throttle":[]}"#,
        ),
    ];
    let runner_seqs = append_as_before(&demo, "runner-gpu-node-1", runner).await;
    let admin: &[(&str, &str, &str)] = &[(
        "artifact.superseded",
        "artifact/before",
        r#"{"slug":"before","version":1e2,"by":1e30,"reason":"r"}"#,
    )];
    let admin_seqs = append_as_before(&demo, "admin", admin).await;

    // The ledger verifies: it holds what ingest accepted then.
    assay(&["verify", "--db", &demo.db()]).ok();
    assay(&["audit", "--db", &demo.db(), "--json"]).ok();

    let out = demo.path("export");
    demo.export(&out, &[]).ok();
    let (code, report) = demo.verify_export(&out);
    assert_eq!(code, 0, "{report}");

    // An integral float is taken at its value; a number its column cannot hold is null, with
    // the payload in events/ as written.
    let metrics = rows_by_seq(&out, "metrics");
    let steps: Vec<Value> = runner_seqs[..4].iter().map(|s| cell(&metrics[s], "step")).collect();
    assert_eq!(steps, [json!(100), json!(100), Value::Null, Value::Null]);
    let runs = &rows_by_seq(&out, "runs")[&runner_seqs[4]];
    assert_eq!((cell(runs, "exit_code"), cell(runs, "duration_ms")), (json!(0), Value::Null));
    let xid = &rows_by_seq(&out, "xids")[&runner_seqs[5]];
    assert_eq!((cell(xid, "code"), cell(xid, "pid")), (Value::Null, json!(7)));
    let telemetry = &rows_by_seq(&out, "telemetry")[&runner_seqs[6]];
    assert_eq!((cell(telemetry, "temp_c"), cell(telemetry, "power_mw")), (json!(-50), Value::Null));
    let artifact = &rows_by_seq(&out, "artifacts")[&admin_seqs[0]];
    assert_eq!((cell(artifact, "version"), cell(artifact, "by")), (json!(100), Value::Null));

    let payload = files_of(&out, "events")
        .iter()
        .flat_map(|rel| read(&out.join(rel)))
        .find_map(|b| {
            let cols = assay::export::events::EventColumns::of(&b).expect("the events columns");
            (0..b.num_rows()).map(|i| cols.row(i)).find(|r| r.seq == runner_seqs[2])
        })
        .expect("the event")
        .payload;
    assert!(payload.contains(r#""step":1e30,"#), "{payload}");
}
