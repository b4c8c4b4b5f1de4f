//! The Xid parser against kernel-log fixtures and their expected records.

use assay_kernels::xid::{XidParse, classify, parse_log};
use serde_json::{Value, json};

const SAMPLE_LOG_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/xid/kmsg-sample.log");
const SAMPLE_EXPECTED_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/xid/kmsg-sample.expected.json");
const OWN_LOG: &str = include_str!("../fixtures/xid/real-shapes.log");
const OWN_EXPECTED: &str = include_str!("../fixtures/xid/real-shapes.expected.json");

struct Found {
    xids: Vec<Value>,
    fallen_off_bus: Vec<Value>,
    malformed_lines: Vec<u64>,
}

fn run(log: &str, with_catalog: bool) -> Found {
    let mut found = Found { xids: Vec::new(), fallen_off_bus: Vec::new(), malformed_lines: Vec::new() };
    for (line, parsed) in parse_log(log) {
        match parsed {
            XidParse::Xid(record) => {
                let mut value = json!({
                    "line": line,
                    "pci": record.pci,
                    "code": record.code,
                    "pid": record.pid,
                    "name": record.name,
                    "message": record.message,
                });
                if with_catalog {
                    let info = classify(&record);
                    value["severity"] = json!(info.severity);
                    value["action"] = json!(info.action);
                }
                found.xids.push(value);
            }
            XidParse::FallenOffBus { pci } => {
                found.fallen_off_bus.push(json!({"line": line, "pci": pci}));
            }
            XidParse::Malformed { .. } => found.malformed_lines.push(line),
            other => panic!("line {line}: unexpected {other:?}"),
        }
    }
    found
}

fn read(path: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    assert!(!text.trim().is_empty(), "{path} is empty");
    text
}

fn expected(text: &str) -> Value {
    assert!(!text.trim().is_empty(), "expectation file is empty");
    serde_json::from_str(text).expect("expectation file is JSON")
}

fn as_vec(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

#[test]
fn shared_kmsg_sample_gives_exactly_the_expected_records() {
    let log = read(SAMPLE_LOG_PATH);
    let want = expected(&read(SAMPLE_EXPECTED_PATH));
    let found = run(&log, false);
    let want_xids = as_vec(&want["xids"]);
    assert!(!want_xids.is_empty());
    assert_eq!(found.xids, want_xids);
    let want_malformed: Vec<u64> =
        as_vec(&want["malformed_lines"]).iter().filter_map(Value::as_u64).collect();
    assert_eq!(found.malformed_lines, want_malformed);
    assert!(found.fallen_off_bus.is_empty());
}

#[test]
fn real_world_shapes_give_exactly_the_expected_records() {
    assert!(!OWN_LOG.trim().is_empty());
    let want = expected(OWN_EXPECTED);
    let found = run(OWN_LOG, true);
    assert_eq!(found.xids, as_vec(&want["xids"]));
    assert_eq!(found.fallen_off_bus, as_vec(&want["fallen_off_bus"]));
    let want_malformed: Vec<u64> =
        as_vec(&want["malformed_lines"]).iter().filter_map(Value::as_u64).collect();
    assert_eq!(found.malformed_lines, want_malformed);
}

#[test]
fn every_prefix_of_every_fixture_line_parses_without_panic() {
    let sample = read(SAMPLE_LOG_PATH);
    for log in [sample.as_str(), OWN_LOG] {
        for line in log.lines() {
            for (end, _) in line.char_indices() {
                let _ = assay_kernels::xid::parse_line(&line[..end]);
            }
        }
    }
}
