//! Replay is deterministic, and `--at N` gives the state the ledger had when its head was N.

use std::process::Command;

#[path = "support/store.rs"]
mod store;

fn assay(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_assay")).args(args).output().unwrap();
    assert!(out.status.success(), "assay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn replay_at_a_past_head_equals_the_state_at_that_head() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    assay(&["demo", "--dir", first.to_str().unwrap(), "--size", "small", "--seed", "3"]);
    let test_db = store::TestDb::from_sqlite(&first.join("assay.db"));
    let db = test_db.target.as_str();
    let digests_then = assay(&["replay", "--db", db, "--digest-only"]);
    assert_eq!(digests_then, assay(&["replay", "--db", db, "--digest-only"]), "replay twice, same digests");
    let head: u64 = assay(&["verify", "--db", db, "--json"])
        .split("\"records\":")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap();

    // Grow the ledger, then ask for the state at the old head.
    let key = first.join("keys/runner-gpu-node-1.key");
    let lines: String = (0..50)
        .map(|i| format!("{{\"type\":\"metric.recorded\",\"subject\":\"run/late\",\"data\":{{\"run\":\"late\",\"name\":\"x\",\"step\":{i},\"value\":1}}}}\n"))
        .collect();
    let ndjson = dir.path().join("more.ndjson");
    std::fs::write(&ndjson, lines).unwrap();
    assay(&["append", "--db", db, "--key", key.to_str().unwrap(), "--ndjson", ndjson.to_str().unwrap()]);
    let now = assay(&["replay", "--db", db, "--digest-only"]);
    assert_ne!(now, digests_then, "new records change the state");
    let at = (head - 1).to_string();
    assert_eq!(assay(&["replay", "--db", db, "--at", &at, "--digest-only"]), digests_then);
}
