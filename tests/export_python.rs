//! DuckDB and pyarrow read every table of an export, and their counts and sums agree with
//! `assay log --json` (tests/python/export_check.py). Under CI=true a missing python3 or
//! module fails the test; elsewhere it skips with a message.

mod export_support;
#[path = "support/skip.rs"]
mod skip;

use std::process::Command;

use export_support::{Demo, assay};

#[test]
fn duckdb_and_pyarrow_read_every_table() {
    let demo = Demo::new(7);
    let out = demo.path("export");
    demo.export(&out, &[]).ok();
    let log = demo.path("log.jsonl");
    std::fs::write(&log, assay(&["log", "--db", &demo.db(), "--json"]).ok().stdout).expect("writing the log");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/export_check.py");
    let result = Command::new("python3").arg(&script).arg(&out).arg(&log).output();
    let skip = |why: String| {
        skip::skip(
            "duckdb_and_pyarrow_read_every_table",
            &format!("{why} (python3 -m pip install duckdb pyarrow)"),
        )
    };
    let output = match result {
        Ok(o) => o,
        Err(e) => return skip(format!("python3 cannot be run: {e}")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => assert!(stdout.starts_with("ok:"), "{stdout}"),
        Some(77) => skip(stderr.trim().to_owned()),
        other => panic!("export_check.py exited {other:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"),
    }
}
