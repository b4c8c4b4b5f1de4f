//! DuckDB and pyarrow read every table of an export, and their counts and sums agree with
//! `assay log --json` (tests/python/export_check.py); after `--since` steps, the README's query
//! over `verdicts/` reads one current row per claim (tests/python/verdicts_check.py). Under
//! CI=true a missing python3 or module fails the test; elsewhere it skips with a message.

use crate::support::export as export_support;
use crate::support::skip;

use std::process::Command;

use export_support::{Demo, assay, manifest};
use serde_json::{Value, json};

/// Runs `tests/python/NAME ARGS…`; it must print `ok:`. Under CI=true a missing python3 or
/// module fails; elsewhere the test skips with a message.
fn python(name: &str, args: &[&std::path::Path]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(name);
    let result = Command::new("python3").arg(&script).args(args).output();
    let skip = |why: String| skip::skip(name, &format!("{why} (python3 -m pip install duckdb pyarrow)"));
    let output = match result {
        Ok(o) => o,
        Err(e) => return skip(format!("python3 cannot be run: {e}")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => assert!(stdout.starts_with("ok:"), "{stdout}"),
        Some(77) => skip(stderr.trim().to_owned()),
        other => panic!("{name} exited {other:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"),
    }
}

#[test]
fn duckdb_and_pyarrow_read_every_table() {
    let demo = Demo::new(7);
    let out = demo.path("export");
    demo.export(&out, &[]).ok();
    let log = demo.path("log.jsonl");
    std::fs::write(&log, assay(&["log", "--db", &demo.db(), "--json"]).ok().stdout).expect("writing the log");
    python("export_check.py", &[&out, &log]);
}

/// The key name of a record's `source` (`assay:key/<name>`).
fn key_of(record: &Value) -> String {
    record["source"].as_str().and_then(|s| s.strip_prefix("assay:key/")).expect("a key source").to_owned()
}

fn verdict_of(audit: &Value, artifact: &str, claim: &str) -> Option<String> {
    audit["claims"]
        .as_array()
        .expect("claims")
        .iter()
        .find(|c| c["artifact"] == artifact && c["claim"] == claim)
        .map(|c| c["verdict"].as_str().expect("verdict").to_owned())
}

#[test]
fn after_incremental_exports_a_plain_glob_reads_one_current_verdict_per_claim() {
    let demo = Demo::new(7);
    let inc = demo.path("incremental");
    let size = |dir: &std::path::Path| manifest(dir)["size"].as_u64().expect("size").to_string();
    let audit = || assay(&["audit", "--db", &demo.db(), "--json"]).ok().json();
    demo.export(&inc, &[]).ok();
    let log = demo.log();
    let before = audit();

    // Step 2: a claim withdrawn, a new one asserted.
    let asserted: Vec<&Value> = log.iter().filter(|r| r["type"] == "claim.asserted").collect();
    let gone = &asserted[0]["event"]["data"];
    let (ga, gc) = (gone["artifact"].as_str().expect("artifact"), gone["claim"].as_str().expect("claim"));
    assert!(verdict_of(&before, ga, gc).is_some());
    let mut new_claim = asserted[1]["event"]["data"].clone();
    new_claim["claim"] = json!("c-new");
    let na = new_claim["artifact"].as_str().expect("artifact").to_owned();
    demo.append(
        &key_of(asserted[0]),
        &[json!({"type": "claim.withdrawn", "subject": format!("artifact/{ga}"),
                 "data": {"artifact": ga, "claim": gc, "reason": "superseded by a rerun"}})],
    )
    .ok();
    demo.append(
        &key_of(asserted[1]),
        &[json!({"type": "claim.asserted", "subject": format!("artifact/{na}"), "data": new_claim})],
    )
    .ok();
    demo.export(&inc, &["--since", &size(&inc)]).ok();
    let middle = audit();
    assert_eq!(verdict_of(&middle, ga, gc), None, "withdrawn");
    assert!(verdict_of(&middle, &na, "c-new").is_some(), "asserted");

    // Step 3: a run's quiet window is recorded, which changes the verdicts of claims on it.
    let waiting = middle["claims"]
        .as_array()
        .expect("claims")
        .iter()
        .find_map(|c| {
            let reasons = c["reasons"].as_array()?;
            let run = reasons.iter().find_map(|r| r.as_str()?.strip_prefix("run_not_quiesced:"))?;
            Some((c["artifact"].as_str()?.to_owned(), c["claim"].as_str()?.to_owned(), run.to_owned()))
        })
        .expect("a claim waiting for its run's quiet window");
    let (wa, wc, run) = waiting;
    let started = log
        .iter()
        .find(|r| r["type"] == "run.started" && r["event"]["data"]["run"] == run.as_str())
        .expect("the run's start");
    demo.append(
        &key_of(started),
        &[json!({"type": "run.quiesced", "subject": format!("run/{run}"),
                 "data": {"run": run, "quiet_window_ms": 30000, "cpu_pct_max": 1.5, "gpu_util_max": 0.0}})],
    )
    .ok();
    demo.export(&inc, &["--since", &size(&inc)]).ok();
    let last = audit();
    assert_ne!(verdict_of(&last, &wa, &wc), verdict_of(&middle, &wa, &wc), "{wa} {wc}: the verdict changed");
    let (code, report) = demo.verify_export(&inc);
    assert_eq!(code, 0, "{report}");

    let full = demo.path("full");
    demo.export(&full, &[]).ok();
    let audit_file = demo.path("audit.json");
    std::fs::write(&audit_file, last.to_string()).expect("writing the audit");
    python("verdicts_check.py", &[&inc, &full, &audit_file, std::path::Path::new("3")]);
}
