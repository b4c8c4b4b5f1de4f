//! Replay is deterministic, and `--at N` gives the state the ledger had when its head was N.

use std::process::Command;

use crate::support::export::Demo;

/// The small demo both tests read (built once per test process, each test its own copy; the
/// report tests use this seed too).
const SEED: u64 = 3;

fn assay(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_assay")).args(args).output().unwrap();
    assert!(out.status.success(), "assay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn replay_at_a_past_head_equals_the_state_at_that_head() {
    let demo = Demo::new(SEED);
    let db = demo.db();
    let db = db.as_str();
    let digests_then = assay(&["replay", "--db", db, "--digest-only"]);
    assert_eq!(digests_then, assay(&["replay", "--db", db, "--digest-only"]), "replay twice, same digests");
    let head: u64 = assay(&["verify", "--db", db, "--json"])
        .split("\"records\":")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap();

    // Grow the ledger, then ask for the state at the old head.
    let key = demo.keys().join("runner-gpu-node-1.key");
    let lines: String = (0..50)
        .map(|i| format!("{{\"type\":\"metric.recorded\",\"subject\":\"run/late\",\"data\":{{\"run\":\"late\",\"name\":\"x\",\"step\":{i},\"value\":1}}}}\n"))
        .collect();
    let ndjson = demo.path("more.ndjson");
    std::fs::write(&ndjson, lines).unwrap();
    assay(&["append", "--db", db, "--key", key.to_str().unwrap(), "--ndjson", ndjson.to_str().unwrap()]);
    let now = assay(&["replay", "--db", db, "--digest-only"]);
    assert_ne!(now, digests_then, "new records change the state");
    let at = (head - 1).to_string();
    assert_eq!(assay(&["replay", "--db", db, "--at", &at, "--digest-only"]), digests_then);
}

/// The (left-aligned) column a header names starts at the same place, in characters, in every
/// row, after two blanks.
#[track_caller]
fn assert_aligned(table: &[&str], column: &str) {
    let header: Vec<char> = table[0].chars().collect();
    let name: Vec<char> = column.chars().collect();
    let at = header
        .windows(name.len())
        .position(|w| w == name)
        .unwrap_or_else(|| panic!("no {column} in {:?}", table[0]));
    for row in &table[1..] {
        let row: Vec<char> = row.chars().collect();
        let text: String = row.iter().collect();
        assert!(row.len() > at, "row shorter than {column}: {text:?}");
        assert!(at == 0 || row[at - 2..at] == [' ', ' '], "{column} not aligned in {text:?}");
        assert_ne!(row[at], ' ', "{column} not aligned in {text:?} (header {:?})", table[0]);
    }
}

/// `queue`, `gpus` and `replay` print aligned tables for people, holding what `--json` holds.
#[test]
fn state_commands_print_tables_for_people_and_json_for_programs() {
    let demo = Demo::new(SEED);
    let db = demo.db();
    let db = db.as_str();

    let queue: serde_json::Value = serde_json::from_str(&assay(&["queue", "--db", db, "--json"])).unwrap();
    let runs = queue["runs"].as_object().expect("runs");
    assert!(runs.len() > 10, "{queue}");
    let text = assay(&["queue", "--db", db]);
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| l.starts_with("RUN ")).unwrap_or_else(|| panic!("{text}"));
    assert!(lines[..header].iter().any(|l| l.starts_with("runs: ")), "{text}");
    assert!(lines[..header].iter().any(|l| l.starts_with("dispatch: ")), "{text}");
    let table = &lines[header..];
    assert_eq!(table.len(), runs.len() + 1, "a row per run: {text}");
    for column in ["STATE", "WORKER", "GPU", "QUEUED", "STARTED", "EXIT"] {
        assert_aligned(table, column);
    }
    for (id, run) in runs {
        let row = table
            .iter()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row {id}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[1], run["state"].as_str().unwrap(), "{row}");
        assert_eq!(cells[2], run["worker"].as_str().unwrap_or("-"), "{row}");
        if let Some(t) = run["producer_time"]["queued"].as_str() {
            assert!(row.contains(&t[..10]), "{row} shows the day of {t}");
        }
    }
    // Queue order: by the seq of run.queued.
    let order: Vec<&str> = table[1..].iter().filter_map(|l| l.split_whitespace().next()).collect();
    let mut by_seq: Vec<(&String, u64)> =
        runs.iter().map(|(id, r)| (id, r["queued_seq"].as_u64().unwrap_or(u64::MAX))).collect();
    by_seq.sort_by_key(|(id, s)| (*s, (*id).clone()));
    assert_eq!(order, by_seq.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>());

    let gpus: serde_json::Value = serde_json::from_str(&assay(&["gpus", "--db", db, "--json"])).unwrap();
    let devices = gpus["devices"].as_object().expect("devices");
    let text = assay(&["gpus", "--db", db]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("HOST ") && lines[0].ends_with("NEEDS RESET"), "{text}");
    let rows: Vec<&str> =
        lines[1..].iter().copied().filter(|l| l.contains(':')).take(devices.len()).collect();
    assert_eq!(rows.len(), devices.len(), "{text}");
    for column in ["PCI", "MODEL", "LAST TELEMETRY", "LAST XID", "NEEDS RESET"] {
        assert_aligned(&lines[..=devices.len()], column);
    }
    for (key, device) in devices {
        let (host, pci) = key.rsplit_once('/').unwrap_or(("(any)", key));
        let row = rows
            .iter()
            .find(|l| l.split_whitespace().take(2).eq([host, pci]))
            .unwrap_or_else(|| panic!("no row for {key} in {text}"));
        let reset = row.split("  ").filter(|c| !c.is_empty()).last().unwrap().trim();
        assert_eq!(reset.starts_with("yes"), device["needs_reset"] == true, "{row}");
        if let Some(name) = device["name"].as_str() {
            assert!(row.contains(name), "{row} names {name}");
        }
    }
    assert!(
        rows.iter().any(|r| r.ends_with(")") && r.contains("yes: Xid")),
        "the demo has a GPU needing a reset: {text}"
    );

    let digests = assay(&["replay", "--db", db, "--digest-only"]);
    let text = assay(&["replay", "--db", db]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("as of seq "), "{text}");
    assert!(lines[1].starts_with("PROJECTION  DIGEST "), "{text}");
    assert_aligned(&lines[1..], "HOLDS");
    assert_eq!(lines.len() - 2, digests.lines().count());
    for (line, row) in digests.lines().zip(&lines[2..]) {
        let (name, digest) = line.split_once(' ').unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!((cells[0], cells[1]), (name, &digest[..16]), "{row}");
    }
    let gpus_row = lines.iter().find(|l| l.starts_with("gpus ")).unwrap();
    assert!(gpus_row.contains(&format!("{} GPUs on ", devices.len())), "{gpus_row}");
    let queue_row = lines.iter().find(|l| l.starts_with("queue ")).unwrap();
    assert!(queue_row.contains(&format!("{} runs (", runs.len())), "{queue_row}");
    let json = assay(&["replay", "--db", db, "--projection", "queue", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["state"], queue);
}
